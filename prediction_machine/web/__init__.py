"""The web layer, thin and removable: it validates, calls the library and serializes. Nothing outside it imports it, except `serve`."""
