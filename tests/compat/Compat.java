// The JVM's side of the compatibility matrix (tests/compat.rs), run as `java Compat.java` (the
// source launcher compiles it in memory): one line per feature, `NAME ok` or `NAME error TEXT`
// (Java hides errno numbers; the matrix names the reason).
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Pipe;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class Compat {
    interface Body { void run() throws Exception; }

    static void feature(String name, Body body) {
        try {
            body.run();
            System.out.println(name + " ok");
        } catch (Throwable e) {
            System.out.println(name + " " + errno(e));
        }
    }

    /** The errno behind a Java exception, from the C library's message the JDK passes on. */
    static String errno(Throwable e) {
        String text = String.valueOf(e.getMessage());
        String[][] known = {
            {"Operation not permitted", "EPERM"},
            {"Permission denied", "EACCES"},
            {"Function not implemented", "ENOSYS"},
            {"Address family not supported", "EAFNOSUPPORT"},
        };
        for (String[] k : known) {
            if (text.contains(k[0])) return k[1];
        }
        return "error " + e.toString().replace('\n', ' ');
    }

    public static void main(String[] args) {
        feature("threads", () -> {
            ExecutorService pool = Executors.newFixedThreadPool(4);
            Future<Integer> f = pool.submit(() -> 6 * 7);
            if (f.get() != 42) throw new IllegalStateException("42");
            pool.shutdown();
        });
        feature("nio-files", () -> {
            Path d = Files.createTempDirectory("compat");
            Path p = d.resolve("a");
            Files.writeString(p, "hello");
            if (!Files.readString(p).equals("hello")) throw new IllegalStateException("read back");
            Files.delete(p);
            Files.delete(d);
        });
        feature("nio-selector", () -> {
            Pipe pipe = Pipe.open();
            Selector sel = Selector.open();
            pipe.source().configureBlocking(false);
            pipe.source().register(sel, SelectionKey.OP_READ);
            pipe.sink().write(ByteBuffer.wrap(new byte[] {1}));
            if (sel.select(5000) != 1) throw new IllegalStateException("no event");
            sel.close();
        });
        feature("process", () -> {
            Process p = new ProcessBuilder("true").start();
            if (p.waitFor() != 0) throw new IllegalStateException("exit " + p.exitValue());
        });
        feature("loopback-tcp", () -> {
            try (ServerSocketChannel srv = ServerSocketChannel.open()) {
                srv.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
                try (SocketChannel c = SocketChannel.open(srv.getLocalAddress());
                     SocketChannel s = srv.accept()) {
                    c.write(ByteBuffer.wrap(new byte[] {42}));
                    ByteBuffer b = ByteBuffer.allocate(1);
                    s.read(b);
                    if (b.get(0) != 42) throw new IllegalStateException("read back");
                }
            }
        });
    }
}
