"""Products: each step run and its files and figures written (reduce, samples, train, predict, ROC and limits reports, surveys, the demo).

Import rule: ``sodinn.pipeline`` imports every stage before it and ``sodinn.plotting``; it is the
only place that writes figures. The command line and surveys use the same functions, so a product
looks the same whichever way it was made.
"""
