"""The consented customers' templates as the local store holds them (a :class:`~core.ports.ConsentGallery`).

Read straight from the data dir's SQLite face index (``face_vectors``) joined with
``customers``: only customers with consent, only their own templates (never a
pending identity's or a do-not-track one's). An erased or retired customer's
rows are gone from ``face_vectors``, so they vanish from the next read; there is
nothing to rewrite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.local.engine import EMBEDDING_DIM
from core.local.sqlite import database
from core.ports import ConsentedTemplates

_QUERY = """
SELECT v.face_id, v.external_id, v.vector
FROM face_vectors AS v
JOIN face_collections AS c ON c.rowid = v.collection
JOIN customers AS cu ON cu.customer_id = v.external_id
WHERE c.collection_id = ? AND cu.consent = 1
ORDER BY v.seq
"""


class SqliteConsentGallery:
    """:class:`~core.ports.ConsentGallery` over a local data dir (``storelens.db``)."""

    def __init__(self, data_dir: Path | str, collection_id: str = "storelens-faces") -> None:
        self.db = database(Path(data_dir) / "storelens.db")
        self.collection_id = collection_id

    def templates(self) -> ConsentedTemplates:
        rows = self.db.connection().execute(_QUERY, (self.collection_id,)).fetchall()
        vectors = np.zeros((len(rows), EMBEDDING_DIM), np.float32)
        for i, row in enumerate(rows):
            vectors[i] = np.frombuffer(row["vector"], dtype="<f4", count=EMBEDDING_DIM)
        return ConsentedTemplates(
            customer_ids=tuple(str(r["external_id"]) for r in rows),
            face_ids=tuple(str(r["face_id"]) for r in rows),
            vectors=vectors,
        )
