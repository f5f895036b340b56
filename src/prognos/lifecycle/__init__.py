"""Model lifecycle: the registry (versions, approval, aliases) over local or S3 storage, alias
watching for serving, MLflow experiment tracking (optional extra) and Optuna tuning.

Import the submodules directly (``prognos.lifecycle.registry``…): tracking and tuning pull in
heavy optional dependencies that the serving path must not load.
"""

__all__: list[str] = []
