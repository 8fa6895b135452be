"""Scenario files: what a scenario may say (``schema``), reading TOML files with extends chains,
grids and overrides (``file``), one run's resolved parameters (``resolved``) and the solve
parameters as flags and keys (``param_flags``)."""
