"""The reproduce report, assembled from what the experiments hand to it.

* :mod:`stelab.report.write`: ``write_report(DIR)``: derived tables, claims.json, figures and
  report.md of a reproduce folder, looping over the registry of experiments;
* :mod:`stelab.report.folder`: the folder's layout and reading its stored tables back;
* :mod:`stelab.report.evidence`: the claims' evidence and verdicts from derived tables.

What every section and figure shares (Markdown, plotting) is in :mod:`stelab.render`, below the
experiments: the writer imports the experiments and no experiment imports the report. This
package imports none of its modules, so importing it does not import the writer.
"""
