"""The reproduce report, assembled from what the experiments hand to it.

* :mod:`stelab.report.write`: ``write_report(DIR)``: derived tables, claims.json, figures and
  report.md of a reproduce folder, looping over the registry of experiments;
* :mod:`stelab.report.folder`: the folder's layout and reading its stored tables back;
* :mod:`stelab.report.evidence`: the claims' evidence and verdicts from derived tables;
* :mod:`stelab.report.markdown`, :mod:`stelab.report.plotting`: what every section and every
  figure shares.

This package imports none of them: the experiment modules use the markdown and plotting
helpers, and the writer imports the experiments, so importing the package must not import the
writer.
"""
