// Starts GraphiQL against this server: queries and mutations over HTTP POST to /graphql,
// subscriptions over graphql-ws on the same path. The documentation explorer is filled from the
// server's own introspection answer.
(function () {
  "use strict";
  var http = new URL("/graphql", window.location.href);
  var socket = new URL("/graphql", window.location.href);
  socket.protocol = socket.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({
    url: http.toString(),
    wsClient: graphqlWs.createClient({ url: socket.toString(), lazy: true }),
  });
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      defaultQuery: "# Items and what they are made of\n{\n  items(first: 5) {\n    totalCount\n    nodes { id name }\n  }\n}\n",
    })
  );
})();
