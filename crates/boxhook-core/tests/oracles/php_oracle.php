<?php
// The PHP oracle for the escaped form. Reads one request per line on stdin:
// a mode letter, a space, and a JSON text. It decodes the text and writes it
// back with json_encode, one line per request:
//   E  json_encode's default flags: the style Box signs (slashes as \/,
//      non-ASCII as lower-case \uXXXX);
//   R  JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE: the same value as a
//      re-serializing hop writes it, raw UTF-8 and bare slashes.
// A request that fails gets "!" and the reason, so the test can say which
// input PHP refused.
while (($line = fgets(STDIN)) !== false) {
    $line = rtrim($line, "\n");
    $mode = substr($line, 0, 2);
    $text = substr($line, 2);
    try {
        // Objects stay objects (stdClass), so {} and [] survive the trip.
        $value = json_decode($text, false, 4096, JSON_THROW_ON_ERROR);
        if ($mode === "E ") {
            $flags = 0;
        } elseif ($mode === "R ") {
            $flags = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE;
        } else {
            echo "!unknown mode\n";
            continue;
        }
        echo json_encode($value, $flags | JSON_THROW_ON_ERROR), "\n";
    } catch (JsonException $e) {
        echo "!", $e->getMessage(), "\n";
    }
}
