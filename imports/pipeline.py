"""What the import targets' pipelines share."""

from dataclasses import dataclass, field

EXAMPLES_PER_REASON = 5


@dataclass
class DryRunReport:
    """A dry run's outcome: failures counted per reason code, with the first few rows of each.
    A target adds its own counts and says which values of a row make a useful example."""

    total_rows: int = 0
    would_create: int = 0
    failures: dict = field(default_factory=dict)  # code -> {"count", "label", "examples"}
    mapping: dict = field(default_factory=dict)
    encoding: str = ""

    reason_labels = {}  # class attribute: the target's labels for its reason codes

    @property
    def failed(self):
        return sum(entry["count"] for entry in self.failures.values())

    def example(self, values):
        raise NotImplementedError

    def add_failure(self, line, values, failure):
        label = self.reason_labels.get(failure.code, failure.code)
        entry = self.failures.setdefault(failure.code, {"count": 0, "label": label, "examples": []})
        entry["count"] += 1
        if len(entry["examples"]) < EXAMPLES_PER_REASON:
            entry["examples"].append(
                {"line": line, **self.example(values), "reason": failure.reason}
            )
