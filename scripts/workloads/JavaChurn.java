// A JVM workload: a HashMap session store (50k keys) whose values (small objects holding strings
// and arrays) are replaced continuously, so the young generation fills and the copying collector
// moves survivors around. Run: java -Xmx96m -XX:+UseParallelGC JavaChurn.java
import java.util.HashMap;
import java.util.Random;

public class JavaChurn {
    record Session(String user, long expires, int[] cart, String json) {}

    public static void main(String[] args) {
        Random r = new Random(1);
        HashMap<Integer, Session> store = new HashMap<>();
        long tick = 0;
        while (true) {
            int k = r.nextInt(50_000);
            int[] cart = new int[r.nextInt(8) + 1];
            for (int i = 0; i < cart.length; i++) cart[i] = r.nextInt(1000);
            String json = "{\"id\":" + k + ",\"tick\":" + tick + ",\"name\":\"user" + k + "\"}";
            store.put(k, new Session("user" + k, tick + 1000, cart, json));
            if (tick % 1000 == 0) {
                store.entrySet().removeIf(e -> e.getValue().expires() < 0);
            }
            tick++;
        }
    }
}
