-- Rasa's SQL tracker store gets its own database next to the store's (score).
CREATE DATABASE rasa OWNER score;
