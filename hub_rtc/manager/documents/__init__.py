"""A session's documents: where one lives (:mod:`.place`, the one answer the
relay, the document API and the pages share), how one is read and changed
through its room (:mod:`.documents`), and the notebooks of a session's folder
the pages list (:mod:`.listing`)."""
