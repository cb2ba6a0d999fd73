"""Accuracy on labelled faces: ``evaluate`` (the command), ``labels`` (folder names to emotions),
``metrics``, ``ferplus`` (the FER+ layout and its crowd votes) and ``scenes`` (crops put into
camera-like frames, to measure the whole pipeline)."""
