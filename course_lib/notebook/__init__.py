"""What the notebooks use around the ML core: plots and widgets (``viz``), PASS/FAIL checks with
tolerances (``checks``), comparisons over seeds with a computed verdict (``compare``) and the
per-notebook results record (``report``)."""
