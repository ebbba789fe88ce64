"""The architecture core, free of torch, Optuna and Ray: specs (:mod:`.spec`), their
one-line and file forms (:mod:`.encoding`), the analytic cost model (:mod:`.cost`), the
registry of block kinds (:mod:`.kinds`) and the canonical networks (:mod:`.seeds`).
Pricing a spec is arithmetic on these and takes microseconds."""
