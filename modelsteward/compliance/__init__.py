"""Compliance tests of model versions: fairness (fairlearn), performance on held-out data and against the champion,
explainability (SHAP, permutation importance) and reproducibility, run from suites as code."""
