package lme.esnode;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.PluginsLoader;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Starts one Elasticsearch node in this JVM, the way the distribution's bootstrap does minus its
 * process checks: the server from the class path, the modules from {@code <home>/modules} through
 * Elasticsearch's own PluginsLoader, HTTP on netty4, data under {@code <work>}.
 *
 * <p>Usage: {@code Main <home> <work> <host> <http-port> <log-level>}. The bound HTTP address is written to
 * {@code <work>/logs/http.ports}. The node stops on SIGTERM or when standard input closes (the
 * launcher died).
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: Main <home> <work> <host> <http-port> <log-level>");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Path work = Path.of(args[1]).toAbsolutePath();
        Path config = Files.createDirectories(work.resolve("config"));
        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", Files.createDirectories(work.resolve("data")).toString())
            .put("path.logs", Files.createDirectories(work.resolve("logs")).toString())
            .put("node.name", "lme-realstack")
            .put("cluster.name", "lme-realstack")
            .put("discovery.type", "single-node")
            .put("network.host", args[2])
            .put("http.port", args[3])
            .put("transport.port", "0")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .put("node.portsfile", true)
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("logger.level", args[4])
            .build();

        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName("lme-realstack");
        LogConfigurator.configureESLogging();
        LogConfigurator.configureWithoutConfig(settings);

        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), config, () -> "lme-realstack");
        PluginsLoader plugins = PluginsLoader.createPluginsLoader(
            PluginsLoader.loadModulesBundles(env.modulesDir()), Set.of(), Map.of(), false);
        Node node = new Node(env, plugins);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stop(node);
            if (Boolean.getBoolean("lme.esnode.deleteWorkOnExit")) {
                deleteTree(work);
            }
        }, "lme-es-node-stop"));
        node.start();
        watchStdin();
    }

    private static void stop(Node node) {
        try {
            node.prepareForClose();
            node.close();
            if (!node.awaitClose(20, TimeUnit.SECONDS)) {
                System.err.println("lme-es-node: node did not close within 20s");
            }
        } catch (IOException | InterruptedException | RuntimeException e) {
            System.err.println("lme-es-node: error while stopping: " + e);
        }
    }

    /** The launcher deletes {@code work} too; this covers a launcher that was killed outright. */
    private static void deleteTree(Path root) {
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException | UncheckedIOException e) {
            System.err.println("lme-es-node: could not delete " + root + ": " + e);
        }
    }

    /**
     * Keeps the JVM alive (the node's threads are all daemons) until standard input closes, i.e. the
     * launcher is gone, then exits through the shutdown hook. SIGTERM exits through it too.
     */
    private static void watchStdin() {
        try (InputStream in = System.in) {
            while (in.read() >= 0) {
                // ignore input; only its end matters
            }
        } catch (IOException ignored) {
            // treat like end of input
        }
        System.exit(0);
    }
}
