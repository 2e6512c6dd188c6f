"""Redaction of secrets and personal data in flat records, before anything leaves Vigil.

Each built-in rule is a regex whose match (or only its `secret` group, when it has one) becomes
`[REDACTED:<rule>]`. Rules run in a fixed order, specific before generic, so a key inside a URL
or a header is labelled by the most precise rule and later rules never see it again.

Most records carry no secret, so each rule names literal triggers (lowercase substrings) and its
regex only runs on text containing one of them. A record's text is checked for every trigger of
every rule in one pass (one substring search per distinct trigger), not rule by rule.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vigil.pipeline.shapes import DIGITS_TO_ZERO as _DIGITS_TO_ZERO
from vigil.pipeline.shapes import shape
from vigil.pipeline.user_regex import MAX_PATTERN_LENGTH, UserRegex
from vigil.records import FlatRecord

Replace = Callable[[re.Match[str], str], str | None]
"""Given a match and the default token: what replaces the match (or its `secret` group), or None
to leave it alone."""

_ALREADY = r"(?!\[REDACTED:)"
"""Keeps a generic rule from redacting what a more specific rule already replaced."""


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    pattern: re.Pattern[str] | UserRegex
    """Vigil's own rules use `re`; users' custom rules RE2 (`UserRegex`)."""
    triggers: tuple[str, ...] = ()
    """One of these must occur in the lowercased text for the regex to run."""
    gate: Callable[[str], bool] | None = None
    """Checked instead when there are no triggers; with neither, the regex always runs."""
    replace: Replace | None = None

    @property
    def token(self) -> str:
        return f"[REDACTED:{self.name}]"


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_DIGIT_GROUP = re.compile(r"[0-9]+")
_SEPARATORS = re.compile(r"[ -]")


# Digits become "0", separators "-", anything else "."; see `_may_hold_card`.
_DIGIT_SHAPE = bytes(0x30 if 0x30 <= b <= 0x39 else 0x2D if b in (0x20, 0x2D) else 0x2E for b in range(256))


def _may_hold_card(text: str) -> bool:
    """Whether 13 digits follow each other with only separators between: a regex scan costs
    several times more, and most text has timestamps and ids but no such run."""
    if len(text) < 13:
        return False
    digits = text.encode("utf-8", "surrogatepass").translate(_DIGIT_SHAPE).replace(b"-", b"")
    return b"0000000000000" in digits


def _replace_cards(match: re.Match[str], token: str) -> str | None:
    """A run of digit groups may hold a card next to other numbers (`4111... 12/25`), so windows
    of whole groups are tried, longest first, left to right. A card has 13 to 19 digits, passes
    the Luhn check, and starts with 2 to 9: no network issues numbers starting with 0 or 1, while
    epoch timestamps and padded ids do."""
    run = match.group()
    groups = [(g.start(), g.end()) for g in _DIGIT_GROUP.finditer(run)]
    pieces: list[str] = []
    last = 0
    i = 0
    while i < len(groups):
        ends: list[int] = []
        digits = 0
        for j in range(i, len(groups)):
            digits += groups[j][1] - groups[j][0]
            if digits > 19:
                break
            if digits >= 13:
                ends.append(j)
        for j in reversed(ends if run[groups[i][0]] not in "01" else ()):
            start, end = groups[i][0], groups[j][1]
            if _luhn(_SEPARATORS.sub("", run[start:end])):
                pieces += [run[last:start], token]
                last = end
                i = j
                break
        i += 1
    if not pieces:
        return None
    pieces.append(run[last:])
    return "".join(pieces)


def _replace_basic(match: re.Match[str], token: str) -> str | None:
    # `Basic` is an ordinary word; only a value that decodes to `user:password` is a credential.
    value = match.group("secret")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if b":" not in decoded:
        return None
    return token


def _replace_bearer(match: re.Match[str], token: str) -> str | None:
    # Real tokens are long; a short word after "bearer" is prose unless an Authorization header
    # says otherwise.
    if len(match.group("secret")) >= 16:
        return token
    before = match.string[max(0, match.start() - 24) : match.start()].lower()
    return token if "authorization" in before else None


def _replace_field(match: re.Match[str], token: str) -> str | None:
    key, separator, value = match.group("key").lower(), match.group("sep"), match.group("secret")
    if key == "pwd" and value[0] in "/~":
        return None  # the shell's working directory, in environment dumps
    if key in ("token", "secret") and value.isalpha() and not any(c in separator for c in "=\"'"):
        # "failed to refresh token: expired" is prose; `auth_token: x` or `X-Auth-Token: x` is not.
        before = match.string[match.start() - 1] if match.start() else " "
        if not (before.isalnum() or before in "_-"):
            return None
    return token


def _rule(
    name: str, pattern: str, triggers: tuple[str, ...], flags: int = 0, replace: Replace | None = None
) -> Rule:
    return Rule(name, re.compile(pattern, flags | re.ASCII), triggers, replace=replace)


_I = re.IGNORECASE
_KEY_SEP = r"\\?[\"']?[ \t]*[:=]>?[ \t]*\\?[\"']?"
"""Between a key and its value: `=`, `: `, `": "`, `=>`, and JSON escaped inside a string."""

BUILTIN_RULES: tuple[Rule, ...] = (
    _rule(
        "private_key",
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
        ("private key",),
        re.DOTALL,
    ),
    _rule(
        "url_password",
        rf"://[^\s:/?#@\"'<>\[\]]*:{_ALREADY}(?P<secret>[^\s/?#\"'<>]+)@(?=[\w\[.-])",
        ("@",),
    ),
    _rule(
        "connection_string_password",
        rf"(?<![\w.-])(?:passw(?:or)?d|pwd(?![ \t]*=[ \t]*[/~]))[ \t]*=(?!>)[ \t]*{_ALREADY}"
        r"(?P<secret>\{[^}]*\}|\"[^\"]+\"|'[^']+'|[^;\s\"']+)",
        ("passw", "pwd"),
        _I,
    ),
    _rule(
        "basic_auth",
        r"\bbasic[ \t]+(?P<secret>[A-Za-z0-9+/]{6,}={0,2})(?![\w+/=])",
        ("basic",),
        _I,
        _replace_basic,
    ),
    _rule(
        "bearer_token",
        rf"\bbearer[ \t]+{_ALREADY}(?P<secret>[\w\-.~+/]+=*)",
        ("bearer",),
        _I,
        _replace_bearer,
    ),
    _rule("jwt", r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*", ("eyj",)),
    _rule("aws_access_key", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", ("akia", "asia")),
    _rule(
        "aws_secret_key",
        rf"(?:aws[_-]?)?secret[_-]?(?:access[_-]?)?key{_KEY_SEP}"
        r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
        ("secret",),
        _I,
    ),
    _rule(
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_\w{22,242})\b",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    _rule(
        "slack_token",
        r"\bxox[abposre]-[A-Za-z0-9-]{10,}|\bxapp-\d-[A-Za-z0-9-]{10,}"
        r"|hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[\w/-]{8,})",
        ("xox", "xapp-", "hooks.slack.com"),
    ),
    _rule("anthropic_key", r"\bsk-ant-[\w-]{20,}", ("sk-ant-",)),
    _rule("openai_key", r"\bsk-(?:proj-|svcacct-|admin-)?[\w-]{20,}", ("sk-",)),
    _rule(
        "stripe_key",
        r"\b(?:[srp]k_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9+/=]{20,})",
        ("_live_", "_test_", "whsec_"),
    ),
    _rule("google_api_key", r"\bAIza[\w-]{35}(?![\w-])", ("aiza",)),
    _rule(
        "password_field",
        r"(?P<key>passw(?:or)?d|pwd|secret(?:[_-]?key(?:[_-]?base)?)?|(?:private|signing|encryption)[_-]?key"
        rf"|api[_-]?key|token)(?P<sep>{_KEY_SEP}){_ALREADY}"
        r"(?P<secret>(?<=\")(?:[^\"\\\n]|\\[^\"\n])+|(?<=')[^'\n]+|[^\s\"'\\,;&<>(){}\[\]]+)",
        ("passw", "pwd", "secret", "token", "apikey", "_key", "-key"),
        _I,
        _replace_field,
    ),
    _rule(
        "email",
        r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,63}(?![\w-])",
        ("@",),
    ),
    Rule(
        "card_number",
        # Matches start only where a run of digit groups starts: linear time on long number lists.
        re.compile(r"(?<![\w.])(?<![0-9][ -])[0-9](?:[ -]?[0-9]){12,}(?![\w]|\.[0-9])", re.ASCII),
        gate=_may_hold_card,
        replace=_replace_cards,
    ),
)
RULES_BY_NAME = {rule.name: rule for rule in BUILTIN_RULES}
DROPPED = "drop_attributes"
"""The counts key for attributes removed by `drop_attributes`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomRule(_Strict):
    """A user pattern. When it has a group named `secret`, only that group is replaced, so context
    such as `customer_id=` stays readable. The replacement is literal text."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=64)]
    pattern: Annotated[str, Field(min_length=1, max_length=MAX_PATTERN_LENGTH)]
    """RE2 syntax: matched in linear time."""
    replacement: Annotated[str | None, Field(max_length=256)] = None

    @field_validator("pattern")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        if UserRegex(value).search(""):
            raise ValueError(f"regex {value!r} matches the empty string")
        return value


class RedactionSpec(_Strict):
    enabled: bool = True
    rules: list[str] | None = Field(
        default=None, max_length=100, description="Built-in rules to apply; omit for all."
    )
    custom: list[CustomRule] = Field(default_factory=list, max_length=50)
    attributes: bool = Field(default=True, description="Also redact attribute and resource values.")
    drop_attributes: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list, max_length=200, description="Attribute keys removed entirely, at any depth."
    )

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, value: list[str] | None) -> list[str] | None:
        unknown = [name for name in value or () if name not in RULES_BY_NAME]
        if unknown:
            raise ValueError(
                f"unknown redaction rule(s) {', '.join(unknown)}; known rules: {', '.join(RULES_BY_NAME)}"
            )
        return value

    @model_validator(mode="after")
    def _unique_custom_names(self) -> RedactionSpec:
        seen: set[str] = set()
        for rule in self.custom:
            if rule.name in RULES_BY_NAME or rule.name == DROPPED or rule.name in seen:
                raise ValueError(f"custom rule name {rule.name!r} is already taken")
            seen.add(rule.name)
        return self


def _custom(rule: CustomRule) -> Rule:
    text = rule.replacement
    pattern = UserRegex(rule.pattern)

    def replace(match: re.Match[str], token: str) -> str | None:
        return None if not match.group() else (token if text is None else text)

    # No gate: gates see the record's strings joined, where an anchored pattern could miss.
    return Rule(rule.name, pattern, replace=replace)


def _wanted(rule: Rule, text: str, lowered: str) -> bool:
    if rule.triggers:
        return any(map(lowered.__contains__, rule.triggers))
    return rule.gate is None or rule.gate(text)


def _spans(match: re.Match[str]) -> tuple[int, int]:
    """Where the replacement goes: the `secret` group when the pattern has one and it took part."""
    index = match.re.groupindex.get("secret")
    if index is not None and match.start(index) >= 0:
        return match.start(index), match.end(index)
    return match.start(), match.end()


def _apply(rule: Rule, text: str) -> tuple[str, int]:
    pieces: list[str] = []
    last = 0
    for match in rule.pattern.finditer(text):
        replaced = rule.token if rule.replace is None else rule.replace(match, rule.token)
        if replaced is None:
            continue
        start, end = _spans(match)
        pieces += [text[last:start], replaced]
        last = end
    if not pieces:
        return text, 0
    pieces.append(text[last:])
    return "".join(pieces), len(pieces) // 2


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out)


_SHAPE_INVARIANT_GATES: frozenset[Callable[[str], bool]] = frozenset({_may_hold_card})


def _shape_invariant(rules: list[Rule]) -> bool:
    """Whether the rules worth trying on a text depend only on its shape (its ASCII digits all
    written as 0): no trigger holds a digit, and every gate treats the ten digits alike. Then
    texts are remembered clean by shape, so "user 4711 logged in" is checked once for all users."""
    for rule in rules:
        if rule.triggers:
            if any(char.isdigit() for trigger in rule.triggers for char in trigger):
                return False
        elif rule.gate not in _SHAPE_INVARIANT_GATES:
            return False  # a custom rule (no triggers, no gate) runs on every text anyway
    return True


_NESTED_OR_STR = (dict, list, str)
"""`dict | list | str` made once: the union is built anew each time the expression runs."""
_RESOURCE_MEMO_SIZE = 256
_CLEAN_SIZE = 16384
_CLEAN_MAX_LENGTH = 256
_CLEAN_MAX_JOINED = 512


class Redactor:
    """Applies one pipeline's RedactionSpec. `counts` accumulates redactions per rule, for metrics.

    Attribute values repeat from record to record (methods, routes, user agents), so strings found
    clean are remembered and skipped. The others are checked together: only the rules whose
    triggers occur anywhere in them are tried on each string, and usually there are none.
    """

    def __init__(self, spec: RedactionSpec) -> None:
        self.spec = spec
        self._enabled = spec.enabled
        self._attributes = spec.attributes
        self.counts: dict[str, int] = {}
        wanted = set(spec.rules) if spec.rules is not None else set(RULES_BY_NAME)
        self._rules = [rule for rule in BUILTIN_RULES if rule.name in wanted]
        self._rules += [_custom(rule) for rule in spec.custom]
        by_trigger: dict[str, list[int]] = {}
        for i, rule in enumerate(self._rules):
            for trigger in rule.triggers:
                by_trigger.setdefault(trigger, []).append(i)
        self._triggers = tuple((trigger, tuple(rules)) for trigger, rules in by_trigger.items())
        self._untriggered = tuple(i for i, rule in enumerate(self._rules) if not rule.triggers)
        self._drop = frozenset(key.lower() for key in spec.drop_attributes)
        self._clean: set[str | bytes] = set()
        """Texts (or their shapes, see `_shape_invariant`) that no rule needs to look at."""
        self._by_shape = _shape_invariant(self._rules)
        self._last_resource: tuple[dict[str, Any], dict[str, Any], dict[str, int]] | None = None
        # Records of one resource share its attributes; equal resources are redacted once.
        self._resource_memo: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, int]]] = {}

    def redact_text(self, text: str) -> tuple[str, int]:
        if not self.spec.enabled:
            return text, 0
        return self._text(text, self.counts, self._candidates([text]))

    def redact_record(self, record: FlatRecord) -> FlatRecord:
        """A new record; the input and everything it holds are left as they were. Containers
        without anything to change are shared with the input, as records already share them."""
        out = dict(record)
        if not self._enabled:
            return out
        body = record.get("body")
        attributes = record.get("attributes")
        attributes = attributes if isinstance(attributes, dict) else None
        strings = [body] if isinstance(body, str) else []
        if attributes is not None and self._attributes:
            for value in attributes.values():
                if value.__class__ is str:
                    strings.append(value)
                elif isinstance(value, _NESTED_OR_STR):
                    _strings(value, strings)
        # the usual record: its strings together were found clean before (see `_candidates`)
        together: str | bytes | None = None
        if len(strings) > 1:
            joined = "\n".join(strings)
            if len(joined) <= _CLEAN_MAX_JOINED:
                together = (
                    joined.encode("utf-8", "surrogatepass").translate(_DIGITS_TO_ZERO)
                    if self._by_shape
                    else joined
                )
        rules = () if together is not None and together in self._clean else self._fresh(strings, together)
        if rules and isinstance(body, str):
            out["body"], _ = self._text(body, self.counts, rules)
        if attributes is not None and (rules or self._drop):
            out["attributes"] = self._mapping(attributes, self.counts, rules)
        resource = record.get("resourceAttributes")
        if isinstance(resource, dict) and (self._attributes or self._drop):
            last = self._last_resource
            if last is not None and last[0] is resource and not last[2]:
                out["resourceAttributes"] = last[1]  # the record's resource, as the last (nothing to count)
            else:
                out["resourceAttributes"] = self._resource(resource)
        return out

    def redact_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """An agent's output, every string at any depth: an agent may echo what it was sent."""
        if not self.spec.enabled:
            return payload
        strings: list[str] = []
        _strings(payload, strings)
        rules = self._candidates(strings)
        if not rules:
            return payload

        def walk(value: Any) -> Any:
            if isinstance(value, str):
                return self._text(value, self.counts, rules)[0]
            if isinstance(value, dict):
                return {key: walk(item) for key, item in value.items()}
            if isinstance(value, list):
                return [walk(item) for item in value]
            return value

        redacted: dict[str, Any] = walk(payload)
        return redacted

    def _candidates(self, strings: list[str]) -> tuple[Rule, ...]:
        """The rules worth trying on these strings; remembers the strings when there are none,
        and a record's strings together too: records of one kind are then checked with one
        lookup. (Joined by a newline, which no trigger, gate or rule crosses, the strings give
        rules exactly when one of them does.)"""
        together: str | bytes | None = None
        if len(strings) > 1:
            joined = "\n".join(strings)
            if len(joined) <= _CLEAN_MAX_JOINED:
                together = shape(joined) if self._by_shape else joined
                if together in self._clean:
                    return ()
        return self._fresh(strings, together)

    def _fresh(self, strings: list[str], together: str | bytes | None) -> tuple[Rule, ...]:
        """`_candidates` once `together` (the strings' key, or None) was not found clean."""
        clean = self._clean
        if self._by_shape:
            table = _DIGITS_TO_ZERO  # `shape`, without a call per string
            fresh = [
                text
                for text in strings
                if text.encode("utf-8", "surrogatepass").translate(table) not in clean
            ]
        else:
            fresh = [text for text in strings if text not in clean]
        if not fresh:
            if together is not None:
                self._remember_together(together)
            return ()
        # A newline stops every rule, so joining adds no match that spans two strings.
        text = "\n".join(fresh)
        lowered = text.lower()
        wanted = [i for trigger, rules in self._triggers if trigger in lowered for i in rules]
        for i in self._untriggered:
            gate = self._rules[i].gate
            if gate is None or gate(text):
                wanted.append(i)
        rules = tuple(self._rules[i] for i in sorted(set(wanted))) if wanted else ()
        if not rules:
            self._remember(fresh)
            if together is not None:
                self._remember_together(together)
        return rules

    def _remember(self, clean: list[str]) -> None:
        if len(self._clean) >= _CLEAN_SIZE:
            self._clean.clear()
        short = [text for text in clean if len(text) <= _CLEAN_MAX_LENGTH]
        self._clean.update([shape(text) for text in short] if self._by_shape else short)

    def _remember_together(self, key: str | bytes) -> None:
        if len(self._clean) >= _CLEAN_SIZE:
            self._clean.clear()
        self._clean.add(key)

    def _is_clean(self, text: str) -> bool:
        return (shape(text) if self._by_shape else text) in self._clean

    def _resource(self, resource: dict[str, Any]) -> dict[str, Any]:
        last = self._last_resource
        if last is not None and last[0] is resource:
            # the records of one resource share its attributes' dict (never changed once built)
            output, tally = last[1], last[2]
        else:
            output, tally = self._resource_memoized(resource)
            self._last_resource = (resource, output, tally)
        for name, n in tally.items():
            self.counts[name] = self.counts.get(name, 0) + n
        return output

    def _resource_memoized(self, resource: dict[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
        try:
            # Types too: 1 == True, but the output must keep the value it was given.
            key = (*resource.items(), *map(type, resource.values()))
            memo = self._resource_memo.get(key)
        except TypeError:  # nested values are unhashable: no memo
            key, memo = None, None
        if memo is None:
            tally: dict[str, int] = {}
            memo = self._redact_mapping(resource, tally), tally
            if key is not None:
                if len(self._resource_memo) >= _RESOURCE_MEMO_SIZE:
                    self._resource_memo.clear()
                self._resource_memo[key] = memo
        return memo

    def _redact_mapping(self, mapping: dict[str, Any], tally: dict[str, int]) -> dict[str, Any]:
        strings: list[str] = []
        if self.spec.attributes:
            _strings(mapping, strings)
        return self._mapping(mapping, tally, self._candidates(strings))

    def _mapping(
        self, mapping: dict[str, Any], tally: dict[str, int], rules: tuple[Rule, ...]
    ) -> dict[str, Any]:
        out: dict[str, Any] | None = None
        for key, value in mapping.items():
            if self._drop and key.lower() in self._drop:
                out = dict(mapping) if out is None else out
                del out[key]
                tally[DROPPED] = tally.get(DROPPED, 0) + 1
                continue
            new = self._value(value, tally, rules)
            if new is not value:
                out = dict(mapping) if out is None else out
                out[key] = new
        return mapping if out is None else out

    def _value(self, value: Any, tally: dict[str, int], rules: tuple[Rule, ...]) -> Any:
        if isinstance(value, str):
            if not rules or not self.spec.attributes:
                return value
            new, n = self._text(value, tally, rules)
            return new if n else value
        if isinstance(value, dict):
            return self._mapping(value, tally, rules)
        if isinstance(value, list):
            items = [self._value(item, tally, rules) for item in value]
            changed = any(new is not old for new, old in zip(items, value, strict=True))
            return items if changed else value
        return value

    def _text(self, text: str, tally: dict[str, int], rules: tuple[Rule, ...]) -> tuple[str, int]:
        if not rules or self._is_clean(text):
            return text, 0
        original = text
        total = 0
        lowered = text.lower()
        for rule in rules:
            if not _wanted(rule, text, lowered):
                continue
            new, n = _apply(rule, text)
            if n:
                text = new
                total += n
                tally[rule.name] = tally.get(rule.name, 0) + n
        if not total:
            self._remember([original])
        return text, total
