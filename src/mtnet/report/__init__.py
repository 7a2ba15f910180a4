"""The report's figures and tables (library layer; the workflow wires them in).

:mod:`mtnet.report.figures`: one function per figure, returning a matplotlib Figure;
:mod:`mtnet.report.tables`: journal-formatted HTML tables from the workflow's TSVs;
:mod:`mtnet.report.captions`: the caption of each, stating its method;
:mod:`mtnet.report.formatting`: the number formats both use.
"""
