"""Thin routes: parse the request, call a query function, render or return JSON."""
