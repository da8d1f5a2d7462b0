"""What every report section and every figure shares, below both the experiments and the report.

* :mod:`stelab.render.markdown`: Markdown tables, numbers with their intervals, image links;
* :mod:`stelab.render.plotting`: the figures' style, axes and file writing (matplotlib,
  imported by that module only).

The experiments (:mod:`stelab.experiments`) use these helpers and the report's writer
(:mod:`stelab.report`) uses the experiments, so imports between the three go one way:
render <- experiments <- report.
"""
