"""The ADK agents dir (`adk web agents`): one folder per app. Only app folders live here."""
