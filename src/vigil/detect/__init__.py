"""Streaming anomaly detection for numeric series, and the request/query detection library built on it:
facts -> windows -> baselines -> signals -> incidents."""

from vigil.detect.anomaly import DetectorConfig, StreamingDetector
from vigil.detect.baselines import BaselineConfig, BaselineSnapshot, BaselineStore, MetricBaseline
from vigil.detect.error_templates import NewErrorTemplates, TemplateSignalConfig
from vigil.detect.facts import (
    Fact,
    QueryFact,
    RequestFact,
    facts_from_record,
    facts_from_span,
    normalize_route,
    normalize_statement,
)
from vigil.detect.incidents import Correlator, Incident, IncidentConfig, IncidentEvent, TimelineEntry
from vigil.detect.signals import (
    Evidence,
    Severity,
    Signal,
    SignalConfig,
    SignalKind,
    detect,
    evaluate,
    fingerprint,
)
from vigil.detect.sketch import DDSketch
from vigil.detect.stats import ClosedWindow, QueryStats, WindowStats
from vigil.detect.windows import WindowConfig, Windower

__all__ = [
    "BaselineConfig",
    "BaselineSnapshot",
    "BaselineStore",
    "ClosedWindow",
    "Correlator",
    "DDSketch",
    "DetectorConfig",
    "Evidence",
    "Fact",
    "Incident",
    "IncidentConfig",
    "IncidentEvent",
    "MetricBaseline",
    "NewErrorTemplates",
    "QueryFact",
    "QueryStats",
    "RequestFact",
    "Severity",
    "Signal",
    "SignalConfig",
    "SignalKind",
    "StreamingDetector",
    "TemplateSignalConfig",
    "TimelineEntry",
    "WindowConfig",
    "WindowStats",
    "Windower",
    "detect",
    "evaluate",
    "facts_from_record",
    "facts_from_span",
    "fingerprint",
    "normalize_route",
    "normalize_statement",
]
