"""Page handlers, one module per part of the console; console.app lists their routes."""
