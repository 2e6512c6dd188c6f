"""Learning from feedback: past cases, their outcome and reward, and what they change in later analyses."""
