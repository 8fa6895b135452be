"""Sweeps: grids x regions, resumable (``runner``), one run each (``task``), run in-process, in a
process pool or on Dask (``executors``), tabulated (``table``) and plotted (``plot``)."""
