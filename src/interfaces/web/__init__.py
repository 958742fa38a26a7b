"""The dashboard: server-rendered pages over the same application queries as the API, behind
the sign-in of `interfaces.http.auth`, live through one Server-Sent Events stream."""
