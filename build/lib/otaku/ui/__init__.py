"""The web UI (`otaku ui`): pages rendered on the server from the REST API's answers."""
