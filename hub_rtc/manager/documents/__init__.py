"""A session's documents: where one lives (the place shared by the relay, the
document API and the pages) and how it is read and changed through its room."""
