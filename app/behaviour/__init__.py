"""The behaviour stage (optional): landmarks, action units, head pose, eyes, attention and blinks per face.

``landmarker`` reads each detected face's crop with MediaPipe's face-landmarker networks, which
``face_mesh`` runs on LiteRT as MediaPipe's graph would (``geometry``: its head-pose fit); ``signals``
turns their output into action units, head pose and eye openness; ``track`` decides which faces are due a
reading and keeps per-face attention and blinks over time; ``columns`` is the timeline's part.
"""
