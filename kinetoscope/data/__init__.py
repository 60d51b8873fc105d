"""Training data: shards and manifests, the world data set writer, and the bucketed loader.

``kinetoscope.data.loader`` imports torch; import it from there so writing data stays torch-free.
"""

from kinetoscope.data.shards import ClipRecord, atomic_write_text, read_manifest, write_manifest

__all__ = ["ClipRecord", "atomic_write_text", "read_manifest", "write_manifest"]
