"""The search: the space (:mod:`.space`, torch-free), the run's Optuna study
(:mod:`.study`, the one module that imports Optuna), proxy trainings as Ray Tune trials
(:mod:`.tune`, the one module that imports Ray), trial outcomes (:mod:`.outcome`), the run
folder and its phases (:mod:`.run`) and reading a finished run (:mod:`.runs`)."""
