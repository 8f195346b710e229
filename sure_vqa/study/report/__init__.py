"""The robustness report (docs/method.md#baselines-and-robustness): iid, ood and relative robustness over seeds, beside the baselines.

    sure-vqa report [experiment_root=PATH] [out=PATH] [key=value ...]

From Python: `build_report(experiment_root, out=None, settings=None)` returns the written files.
"""

from sure_vqa.study.report.build import build_report, settings_from_config
from sure_vqa.study.report.tables import ReportSettings

__all__ = ["ReportSettings", "build_report", "settings_from_config"]
