"""The ``herschik`` command line: ``main`` (the entry point, exit codes), ``parser`` (argparse and
the table of commands), ``dataset`` (``regions``), one module per other command (``solve``,
``data``, ``matrix``, ``network``, ``sweep``, ``compare``, ``simulate``, ``app``), ``shared``
(the dataset the flags name, loaded) and ``console_summary``. A command's module is imported
only when it runs.
"""
