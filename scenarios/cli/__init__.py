"""The ``herschik`` command line: ``main`` (the entry point, exit codes), ``parser`` (argparse and
the table of commands), ``dataset`` (``regions``), ``solve``, ``commands`` (the others) and
``console_summary``. A command's module is imported only when it runs.
"""
