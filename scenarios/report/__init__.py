"""The planner's documents of one run: report.html (``page`` and its sections), report.pdf
(``pdf``) and results.xlsx (``workbook``)."""
