"""The guard's screen (Flask); arrives with the guard's-screen issue."""
