"""Hand-made edits shared by the store, retriever and chat-model tests."""

STATEMENTS = [
    "The chief executive of Acme Corporation is Ada Lovelace.",
    "The Zephyr Tower is located in Lisbon.",
    "Oskar Brandt speaks Portuguese.",
    "Mira Solberg plays for the Chicago Bulls.",
]
IDS = ["acme", "zephyr", "oskar", "mira"]
QUERY = "Who is the chief executive of Acme Corporation?"
