"""Report writing: one run's energy report and model card, and the comparison of finished runs.

- :mod:`.energy_report`: ``energy_report.csv/.md`` (and ``energy_subset.csv``) of one run;
- :mod:`.model_card`: ``MODEL.md`` from a run's own artefacts;
- :mod:`.summary`: several run folders side by side (``summary.csv/.md/.tex``);
- :mod:`.figures`: the comparison's figures (PNG and PDF, two-column paper size).
"""
