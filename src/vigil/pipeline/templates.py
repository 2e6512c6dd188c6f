"""Online log template mining: a stable `template_id` and a masked `template` per message.

The miner is a Drain-style online clusterer (He et al., ICWS 2017) with one configuration for every
kind of log. A message goes through three steps:

1. Masking. General rules turn what is obviously variable into the wildcard `<*>`: any token
   with a digit (numbers, ids, hex, IPs, timestamps, versions), paths (absolute, or relative with
   two slashes or more) and URLs, host names, `user@host`, lists glued by commas (`a,b,c`),
   MAC-style hex groups (`aa:bb:cc:dd`), long hex words, dates written with month names,
   quantities with a unit ("1.2 KB", "<1 sec"). Key-value
   tokens keep their key (`uid=<*>`), call-like tokens their name (`chdir(<*>)`), and brackets
   that hold only a variable become one (`(<*>)` and `()` are `<*>`). Runs of wildcards collapse
   into one, so an optional variable part ("0 bytes" vs "1190 bytes (1.16 KB)") does not change
   the shape of the message. A message longer than `max_tokens` keeps its first `max_tokens`
   tokens and one `<*>` for the rest: what varies in length there (free text, lists, dumps) does
   not split its event. The rules are the same for every kind of log; the few numeric settings are
   the ones leave-one-dataset-out cross-validation on Loghub keeps (bench/templates_cv.py).
2. Matching. A message joins a cluster of the same token count when no constant token of the
   template disagrees with a constant token of the message, and enough of the template's constants
   are present (`similarity_threshold`). Differing words are therefore treated as different events
   ("VM Started" vs "VM Stopped") until there is evidence that the position is a variable:
3. Variable discovery. When a new message would open a cluster and at least
   `min_distinct_values` clusters (the message included) differ from each other in one and the
   same word position only, they are merged and that position becomes `<*>` ("session closed for
   user <*>").

Template ids. A cluster's id is a short hash of its template text *when the cluster was created*
and never changes afterwards, although the template text generalizes as messages arrive. Two
processes that see the same stream assign the same ids, and `state()` / `from_state()` keep them
across restarts. When clusters merge, the oldest cluster's id survives and the others become
aliases of it (`resolve`).

The miner is not thread-safe; use one per project (and pipeline) or guard it with a lock.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

__all__ = [
    "WILDCARD",
    "TemplateMatch",
    "TemplateMiner",
    "TemplateMinerConfig",
    "mask_message",
    "mask_token",
    "template_hash",
]

WILDCARD = "<*>"
_STATE_VERSION = 1

# --- masking ---------------------------------------------------------------------------------

_HAS_DIGIT = re.compile(r"\d")
_LEAD = re.compile(r"^[\[({'\"]+")
_TRAIL = re.compile(r"[\])}'\",;:.!?]+$")
# key=value, key:value, key.....value (aligned dumps)
_KEY_VALUE = re.compile(r"^([A-Za-z_][\w\-]*(?:\.[A-Za-z_][\w\-]*)*)(=|:|\.{2,})(.+)$", re.S)
_CALL = re.compile(r"^([A-Za-z_][\w.\-]*[(\[])([^()\[\]]+?)([)\]]?)$")  # f(x), proc[pid]
_HOST = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+){2,}")
_SHORT_HOST = re.compile(r"[a-z0-9-]+\.[a-z]{2,3}")
_HEX_WORD = re.compile(r"[0-9a-f]{8,}|[0-9A-F]{8,}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*")  # user@host
_WORD_LIST = re.compile(r"[^,\s]+(?:,[^,\s]+){2,}")  # a,b,c: a list glued by commas
_HEX_GROUPS = re.compile(r"[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){3,}")  # MAC-style, even without digits
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:\\")
_BRACKETS = frozenset({"()", "[]", "{}"})
_SCAN_ALL_BELOW = 16  # buckets this small are scanned rather than looked up in the index

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
_UNITS = r"(?:[KMGTP]i?B|[kmgt]b|B|bytes?|ns|us|µs|ms|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?)"
_PRE_MASKS: tuple[re.Pattern[str], ...] = (
    # "Sun Jul  3 10:05:25 2005", "Jul 3 10:05:25", "Jul 3, 2005"
    re.compile(
        rf"\b(?:{_WEEKDAY}\s+)?{_MONTH}\s+\d{{1,2}}(?:,?\s+\d{{4}})?(?:\s+{_CLOCK})?(?:\s+\d{{4}})?(?!\w)"
    ),
    # quantities with a unit: "1.2 KB", "<1 sec", "250ms", "-3 s"
    re.compile(rf"(?<![\w.])[<>~]?=?[-+]?\d+(?:\.\d+)?\s?{_UNITS}(?!\w)"),
)


def _mask_core(core: str) -> str:
    if _HAS_DIGIT.search(core):
        return WILDCARD
    if (core[0] == "/" and len(core) > 1) or core.startswith(("./", "~/")) or "\\" in core:
        return WILDCARD
    if core.count("/") >= 2:  # a relative path (one slash stays: "I/O", "KB/s")
        return WILDCARD
    if _EMAIL.fullmatch(core) or _WORD_LIST.fullmatch(core):
        return WILDCARD
    if _URL.match(core):
        return WILDCARD
    if _HOST.fullmatch(core) and not core.rsplit(".", 1)[-1][:1].isupper():
        # a host name (a Java class name ends with a capitalized part and stays)
        return WILDCARD
    if _SHORT_HOST.fullmatch(core) or _HEX_WORD.fullmatch(core):
        return WILDCARD
    return core


def _mask_inner(core: str) -> str:
    if core == WILDCARD:
        return core
    if _URL.match(core) or _WINDOWS_PATH.match(core) or _HEX_GROUPS.fullmatch(core):
        return WILDCARD
    kv = _KEY_VALUE.match(core)
    if kv is not None:
        key, sep, value = kv.groups()
        if sep == ":" and "." in key and value.isdigit():  # host:port
            return WILDCARD
        masked = mask_token(value)
        return core if masked is value else key + sep + masked
    call = _CALL.match(core)
    if call is not None:
        name, args, close = call.groups()
        masked = mask_token(args)
        return core if masked is args else name + masked + close
    return _mask_core(core)


def mask_token(token: str) -> str:
    """Mask one whitespace-delimited token; returns `token` itself when it is kept as is."""
    if token == WILDCARD:
        return token
    lead_m = _LEAD.match(token)
    lead = lead_m.group(0) if lead_m else ""
    trail_m = _TRAIL.search(token, len(lead))
    trail = trail_m.group(0) if trail_m else ""
    core = token[len(lead) : len(token) - len(trail)]
    if not core:
        return WILDCARD if token in _BRACKETS else token
    masked = _mask_inner(core)
    if masked == WILDCARD and lead + trail in _BRACKETS:
        return WILDCARD
    if masked is core:
        return token
    return lead + masked + trail


def _pre_mask(message: str) -> str:
    for pattern in _PRE_MASKS:
        message = pattern.sub(WILDCARD, message)
    return message


def mask_message(message: str) -> tuple[str, ...]:
    """The masked tokens of `message`, as the miner sees them (uncached; for tests and tools)."""
    out: list[str] = []
    for raw in _pre_mask(message).split():
        token = mask_token(raw)
        if token == WILDCARD and out and out[-1] == WILDCARD:
            continue
        out.append(token)
    return tuple(out)


def template_hash(template: str, salt: int = 0) -> str:
    """The id that a cluster created with `template` gets (`salt` > 0 only on a collision)."""
    data = template.encode("utf-8", "surrogatepass")
    if salt:
        data += b"\x00" + str(salt).encode()
    return hashlib.blake2b(data, digest_size=8).hexdigest()


# --- config and results ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TemplateMinerConfig:
    """One configuration for all kinds of logs; the defaults are the tuned ones."""

    similarity_threshold: float = 0.5
    """Share of a template's constant tokens that a message must repeat to join its cluster."""
    min_distinct_values: int = 5
    """Clusters differing in one word position only that prove the position is a variable."""
    max_new_variables: int = 2
    """Word positions that one merge of sibling clusters may turn into variables at once."""
    max_clusters: int = 50_000
    """Past this, unmatched messages get a template (and a stable id) but open no cluster."""
    max_tokens: int = 24
    """Longer messages are mined on their first `max_tokens` tokens followed by one `<*>`: past
    that, what varies in length (free text, lists, dumps) is taken as one variable."""
    cache_size: int = 20_000
    """Entries of the exact-match and token caches (each is cleared when full)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.similarity_threshold <= 1.0:
            raise ValueError("similarity_threshold must be within [0, 1]")
        if self.min_distinct_values < 2:
            raise ValueError("min_distinct_values must be at least 2")
        if self.max_new_variables < 1:
            raise ValueError("max_new_variables must be at least 1")
        if self.max_clusters < 1 or self.max_tokens < 1 or self.cache_size < 1:
            raise ValueError("max_clusters, max_tokens and cache_size must be positive")


class TemplateMatch(NamedTuple):
    """One message's cluster. (A named tuple: the router makes one per record, and a frozen
    dataclass took about as long to make as the rest of mining a known message.)"""

    template_id: str
    """Stable id of the message's cluster: assigned at creation, kept as the template generalizes."""
    template: str
    """The cluster's current template, variables masked as `<*>`."""
    cluster_size: int
    """Messages the cluster has taken so far, this one included."""
    is_new: bool
    """True when this message opened the cluster."""


_new_match = tuple.__new__

# --- clusters ----------------------------------------------------------------------------------


class _Cluster:
    __slots__ = ("_joined", "cluster_id", "merged_into", "seq", "size", "tokens")

    def __init__(self, cluster_id: str, seq: int, tokens: tuple[str, ...], size: int) -> None:
        self.cluster_id = cluster_id
        self.seq = seq
        self.tokens = tokens
        self.size = size
        self.merged_into: _Cluster | None = None
        self._joined: tuple[tuple[str, ...], str] | None = None

    def live(self) -> _Cluster:
        cluster = self
        while cluster.merged_into is not None:
            cluster = cluster.merged_into
        return cluster

    @property
    def template(self) -> str:
        """The tokens joined, kept until the tokens change (every match returns it)."""
        joined = self._joined
        if joined is None or joined[0] is not self.tokens:
            joined = self._joined = (self.tokens, " ".join(self.tokens))
        return joined[1]


class _Bucket:
    """The clusters of one token count, indexed by (position, constant token)."""

    __slots__ = ("by_token", "clusters", "length", "wild")

    def __init__(self, length: int) -> None:
        self.length = length
        self.clusters: dict[int, _Cluster] = {}
        self.by_token: list[dict[str, set[int]]] = [{} for _ in range(length)]
        self.wild: list[set[int]] = [set() for _ in range(length)]

    def add(self, cluster: _Cluster) -> None:
        self.clusters[cluster.seq] = cluster
        for pos, token in enumerate(cluster.tokens):
            if token == WILDCARD:
                self.wild[pos].add(cluster.seq)
            else:
                self.by_token[pos].setdefault(token, set()).add(cluster.seq)

    def remove(self, cluster: _Cluster) -> None:
        del self.clusters[cluster.seq]
        for pos, token in enumerate(cluster.tokens):
            if token == WILDCARD:
                self.wild[pos].discard(cluster.seq)
            else:
                self._unindex(pos, token, cluster.seq)

    def retemplate(self, cluster: _Cluster, tokens: tuple[str, ...]) -> None:
        for pos, (old, new) in enumerate(zip(cluster.tokens, tokens, strict=True)):
            if old != new:  # only ever constant -> wildcard
                self._unindex(pos, old, cluster.seq)
                self.wild[pos].add(cluster.seq)
        cluster.tokens = tokens

    def _unindex(self, pos: int, token: str, seq: int) -> None:
        seqs = self.by_token[pos].get(token)
        if seqs is not None:
            seqs.discard(seq)
            if not seqs:
                del self.by_token[pos][token]

    def _agreeing(self, pos: int, token: str) -> tuple[int, set[int], set[int]]:
        exact = self.by_token[pos].get(token)
        wild = self.wild[pos]
        return (len(exact) if exact else 0) + len(wild), exact or set(), wild

    def candidates(self, tokens: tuple[str, ...], spare: int) -> Iterator[_Cluster]:
        """Clusters that can agree with `tokens` on all but `spare` of its constant positions."""
        if len(self.clusters) <= _SCAN_ALL_BELOW:
            yield from list(self.clusters.values())
            return
        picks: list[tuple[int, set[int], set[int]]] = []
        for pos, token in enumerate(tokens):
            if token != WILDCARD:
                picks.append(self._agreeing(pos, token))
        if len(picks) <= spare:
            yield from list(self.clusters.values())
            return
        picks.sort(key=lambda pick: pick[0])
        seqs: set[int] = set()
        for _, exact, wild in picks[: spare + 1]:
            seqs |= exact
            seqs |= wild
        for seq in sorted(seqs):
            yield self.clusters[seq]


def _generalize(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(x if x == y else WILDCARD for x, y in zip(a, b, strict=True))


def _generalize_all(first: tuple[str, ...], others: list[tuple[str, ...]]) -> tuple[str, ...]:
    out = first
    for other in others:
        out = _generalize(out, other)
    return out


# --- the miner ---------------------------------------------------------------------------------


class TemplateMiner:
    """Online Drain-style template miner; see the module docstring for the algorithm."""

    def __init__(self, config: TemplateMinerConfig | None = None) -> None:
        self.config = config or TemplateMinerConfig()
        self._buckets: dict[int, _Bucket] = {}
        self._by_id: dict[str, _Cluster] = {}  # live clusters and merged-away ones
        self._exact: dict[tuple[str, ...], _Cluster] = {}
        self._token_cache: dict[str, str] = {}
        self._next_seq = 0
        self._live = 0

    # -- public API --

    def mine(self, message: str) -> TemplateMatch:
        """Assign `message` to a cluster (learning from it) and return the cluster's template."""
        tokens = self._tokens(message)
        cached = self._exact.get(tokens)
        if cached is not None:
            cluster = cached.live()
            cluster.size += 1
            return self._match(cluster, False)
        bucket = self._buckets.get(len(tokens))
        if bucket is None:
            bucket = self._buckets[len(tokens)] = _Bucket(len(tokens))
        cluster_or_none = self._best(bucket, tokens)
        is_new = False
        if cluster_or_none is not None:
            cluster = cluster_or_none
            if cluster.tokens != tokens:
                generalized = _generalize(cluster.tokens, tokens)
                if generalized != cluster.tokens:
                    bucket.retemplate(cluster, generalized)
            cluster.size += 1
        else:
            merged = self._merge_siblings(bucket, tokens)
            if merged is not None:
                cluster = merged
            elif self._live >= self.config.max_clusters:
                template = " ".join(tokens)
                return TemplateMatch(template_hash(template), template, 1, True)
            else:
                cluster = self._create(bucket, tokens)
                is_new = True
        self._remember(tokens, cluster)
        return self._match(cluster, is_new)

    def lookup(self, message: str) -> TemplateMatch | None:
        """The cluster `message` would join, without learning from it; None if it would open one."""
        tokens = self._tokens(message)
        cached = self._exact.get(tokens)
        if cached is not None:
            return self._match(cached.live(), False)
        bucket = self._buckets.get(len(tokens))
        cluster = self._best(bucket, tokens) if bucket is not None else None
        return self._match(cluster.live(), False) if cluster is not None else None

    def resolve(self, template_id: str) -> str:
        """The id under which a (possibly merged-away) cluster's messages are now grouped."""
        cluster = self._by_id.get(template_id)
        return cluster.live().cluster_id if cluster is not None else template_id

    def template(self, template_id: str) -> str | None:
        """The current template of a cluster (following merges), or None if unknown."""
        cluster = self._by_id.get(template_id)
        return cluster.live().template if cluster is not None else None

    def templates(self) -> list[TemplateMatch]:
        """The live clusters, oldest first (`is_new` is False)."""
        live = sorted(
            (c for bucket in self._buckets.values() for c in bucket.clusters.values()),
            key=lambda c: c.seq,
        )
        return [TemplateMatch(c.cluster_id, c.template, c.size, False) for c in live]

    @property
    def cluster_count(self) -> int:
        return self._live

    def state(self) -> bytes:
        """Everything needed to resume with the same ids, as JSON."""
        clusters = sorted(self._by_id.values(), key=lambda c: c.seq)
        payload: dict[str, Any] = {
            "version": _STATE_VERSION,
            "config": asdict(self.config),
            "next_seq": self._next_seq,
            "clusters": [
                {"id": c.cluster_id, "seq": c.seq, "size": c.size, "tokens": list(c.tokens)}
                for c in clusters
                if c.merged_into is None
            ],
            "aliases": {c.cluster_id: c.live().cluster_id for c in clusters if c.merged_into is not None},
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_state(cls, data: bytes, config: TemplateMinerConfig | None = None) -> TemplateMiner:
        """Resume from `state()`; `config` overrides the one saved with the state."""
        payload = json.loads(data)
        if not isinstance(payload, dict) or payload.get("version") != _STATE_VERSION:
            raise ValueError("unsupported template miner state")
        miner = cls(config or TemplateMinerConfig(**payload["config"]))
        for item in payload["clusters"]:
            tokens = tuple(str(t) for t in item["tokens"])
            cluster = _Cluster(str(item["id"]), int(item["seq"]), tokens, int(item["size"]))
            bucket = miner._buckets.get(len(tokens))
            if bucket is None:
                bucket = miner._buckets[len(tokens)] = _Bucket(len(tokens))
            bucket.add(cluster)
            miner._by_id[cluster.cluster_id] = cluster
            miner._live += 1
        for alias, target in payload["aliases"].items():
            live = miner._by_id.get(str(target))
            if live is not None:
                stub = _Cluster(str(alias), -1, live.tokens, 0)
                stub.merged_into = live
                miner._by_id[stub.cluster_id] = stub
        miner._next_seq = int(payload["next_seq"])
        return miner

    # -- internals --

    def _tokens(self, message: str) -> tuple[str, ...]:
        cache = self._token_cache
        if len(cache) >= self.config.cache_size:
            cache.clear()
        out: list[str] = []
        previous = ""
        limit = self.config.max_tokens
        for raw in _pre_mask(message).split():
            token = cache.get(raw)
            if token is None:
                token = cache[raw] = mask_token(raw)
            if token == WILDCARD and previous == WILDCARD:
                continue
            if len(out) == limit:
                # a long message: its event is in its first `limit` tokens, the rest is one variable
                if previous != WILDCARD:
                    out.append(WILDCARD)
                break
            out.append(token)
            previous = token
        return tuple(out)

    def _remember(self, tokens: tuple[str, ...], cluster: _Cluster) -> None:
        if len(self._exact) >= self.config.cache_size:
            self._exact.clear()
        self._exact[tokens] = cluster

    def _match(self, cluster: _Cluster, is_new: bool) -> TemplateMatch:
        # the named tuple made without its Python-level __new__ (one match per routed record)
        return _new_match(TemplateMatch, (cluster.cluster_id, cluster.template, cluster.size, is_new))

    def _best(self, bucket: _Bucket, tokens: tuple[str, ...]) -> _Cluster | None:
        """The most similar cluster that has no constant token conflicting with `tokens`."""
        threshold = self.config.similarity_threshold
        best: _Cluster | None = None
        best_key = (-1.0, -1)
        for cluster in bucket.candidates(tokens, 0):
            same = 0
            constants = 0
            for a, t in zip(cluster.tokens, tokens, strict=True):
                if a == WILDCARD:
                    continue
                constants += 1
                if a == t:
                    same += 1
                elif t != WILDCARD:
                    break
            else:
                if constants == 0:
                    if cluster.tokens != tokens:
                        continue  # an all-wildcard template would swallow everything
                    key = (1.0, 0)
                else:
                    key = (same / constants, same)
                if key[0] >= threshold and key > best_key:  # ties: the oldest (lowest seq)
                    best, best_key = cluster, key
        return best

    def _merge_siblings(self, bucket: _Bucket, tokens: tuple[str, ...]) -> _Cluster | None:
        """Merge the clusters that differ from `tokens` in the same few word positions only, when
        each of those positions shows `min_distinct_values` values per position merged at once."""
        distinct = self.config.min_distinct_values
        if len(bucket.clusters) < distinct - 1:
            return None
        threshold = self.config.similarity_threshold
        spare = self.config.max_new_variables
        by_conflicts: dict[tuple[int, ...], list[_Cluster]] = {}
        for cluster in bucket.candidates(tokens, spare):
            conflicts: list[int] = []
            same = 0
            constants = 0
            for pos, (a, t) in enumerate(zip(cluster.tokens, tokens, strict=True)):
                if a == WILDCARD:
                    continue
                constants += 1
                if a == t:
                    same += 1
                elif t != WILDCARD:
                    conflicts.append(pos)
                    if len(conflicts) > spare:
                        break
            else:
                kept = constants - len(conflicts)
                if conflicts and kept > 0 and same / kept >= threshold:
                    by_conflicts.setdefault(tuple(conflicts), []).append(cluster)
        best: list[_Cluster] = []
        best_positions: tuple[int, ...] = ()
        for positions in sorted(by_conflicts, key=lambda ps: (len(ps), ps)):
            # clusters whose conflicts are among `positions` (a value may repeat in one of two)
            members = [c for ps, cs in by_conflicts.items() if set(ps) <= set(positions) for c in cs]
            # more positions at once need more evidence: state pairs ("from A to B") stay apart
            need = distinct * len(positions)
            if len(members) < need - 1 or len(members) <= len(best):
                continue
            if all(len({c.tokens[p] for c in members} | {tokens[p]}) >= need for p in positions):
                best, best_positions = members, positions
        if not best:
            return None
        best.sort(key=lambda c: c.seq)
        survivor = best[0]
        generalized = list(_generalize_all(tokens, [c.tokens for c in best]))
        for p in best_positions:
            generalized[p] = WILDCARD
        for cluster in best[1:]:
            bucket.remove(cluster)
            cluster.merged_into = survivor
            survivor.size += cluster.size
            self._live -= 1
        bucket.retemplate(survivor, tuple(generalized))
        survivor.size += 1
        return survivor

    def _create(self, bucket: _Bucket, tokens: tuple[str, ...]) -> _Cluster:
        template = " ".join(tokens)
        salt = 0
        cluster_id = template_hash(template)
        while cluster_id in self._by_id:
            salt += 1
            cluster_id = template_hash(template, salt)
        cluster = _Cluster(cluster_id, self._next_seq, tokens, 1)
        self._next_seq += 1
        bucket.add(cluster)
        self._by_id[cluster_id] = cluster
        self._live += 1
        return cluster
