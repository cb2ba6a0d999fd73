"""The behaviour stage (optional): landmarks, action units, head pose, eyes, attention and blinks per face.

``landmarker`` runs MediaPipe's FaceLandmarker on each detected face's crop; ``signals`` turns its
output into action units, head pose and eye openness; ``track`` decides which faces are due a
reading and keeps per-face attention and blinks over time; ``columns`` is the timeline's part.
"""
