"""Read models built from the event stream: session state, served to the API."""
