import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy in front of a real server, to make that server unreachable on demand: `cut()`
 * drops every open connection and refuses new ones (as a network partition or a database
 * restart does), `restore()` accepts connections again on the same port.
 */
export interface TcpProxy {
  port: number;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };
  const newServer = () =>
    createServer((client) => {
      const upstream = connect(target.port, target.host);
      track(client);
      track(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
  const listen = (server: Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        const address = server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  const stop = (server: Server) =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });

  let server: Server | undefined = newServer();
  const port = await listen(server, 0);
  return {
    port,
    cut: async () => {
      if (server) await stop(server);
      server = undefined;
    },
    restore: async () => {
      if (server) return;
      server = newServer();
      await listen(server, port);
    },
    close: async () => {
      if (server) await stop(server);
      server = undefined;
    },
  };
}
