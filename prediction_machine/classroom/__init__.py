"""The class together: rounds against the model, the total variation distance, the teacher's roster.

Library code the web server's classroom routes call (web/routes/classroom.py); it knows nothing
about HTTP, tokens or cookies. A student here is any hashable key the caller vouches for.
"""
