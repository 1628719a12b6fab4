"""The Daff Inc. demo: a fictional music streamer whose data mesh ships with quanta."""
