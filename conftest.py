"""Test-session settings that must be in place before scipy or scikit-learn load."""

import os

# scikit-learn's array-API estimator check runs only when SciPy's array-API support
# is on; without it the check is skipped rather than run.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
