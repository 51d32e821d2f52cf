"""One router per section of the page."""
