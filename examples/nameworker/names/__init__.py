"""The names app: NameJob, the greetings it records, and the pages that show them."""
