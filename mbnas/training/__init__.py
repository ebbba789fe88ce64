"""Proxy training: the protocol (:mod:`.protocol`, torch-free settings), how a target spec
is adapted to small images (:mod:`.proxy`), the training loop (:mod:`.trainer`) and the
MobileNet baselines under a protocol (:mod:`.baseline`)."""
