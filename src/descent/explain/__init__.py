"""descent.explain: tools that explain the gradients descent computes."""

from .anomaly import AnomalyError, AnomalyReport, detect_anomaly  # noqa: F401
from .curvature import (  # noqa: F401
    HessianOperator,
    Sharpness,
    SpectralDensity,
    TraceEstimate,
    hessian_trace,
    hvp,
    sharpness,
    spectral_density,
)
from .curvature_stability import (  # noqa: F401
    NoiseScale,
    StabilityReport,
    gradient_noise_scale,
    stability,
)
from .gradcheck import GradcheckError, GradcheckResult, gradcheck, gradgradcheck  # noqa: F401
from .graph import GraphView, graph  # noqa: F401
from .landscape import (  # noqa: F401
    LossLandscape,
    Trajectory,
    descent_path,
    flatten_parameters,
    loss_landscape,
    surface_grid,
    trajectory_landscape,
    trajectory_projection,
)
from .model_check import ModelGradCheck, check_model_gradients  # noqa: F401
from .monitor import GradientMonitor, ReportCallback  # noqa: F401
from .report import (  # noqa: F401
    GradientReport,
    Thresholds,
    analyze_run,
    gradient_report,
    watch_updates,
    write_report,
)
