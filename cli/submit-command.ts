/**
 * `flint submit`, as the command line sees it: spark-submit's flags, usage and
 * help. What it does (submit.ts: build the request, send it) is imported only
 * when the command runs.
 */
import { Command, Option } from 'commander';
import { DOCKER_RESOURCE_SCHEME, FLINT_IMAGE_PROPERTY } from '../protocol/rest.ts';
import { processIo, type CommandIo } from './command-io.ts';
import { collectRepeatable } from '../lib/repeatable-option.ts';
import { CA_HELP } from './status-kill-command.ts';
import type { SubmitFlags } from './submit.ts';

/** registerSubmitCommand adds `flint submit` to the program (which it switches to positional options, as spark-submit parses). */
export function registerSubmitCommand(program: Command, io: CommandIo = processIo()): Command {
  // Options after the appResource belong to the application (spark-submit's rule), which
  // commander supports only with positional options on the parent.
  program.enablePositionalOptions();
  return program
    .command('submit')
    .description('Submit a driver to a Flint cluster through its REST server (spark-submit, cluster deploy mode).')
    .usage('[options] <appResource> [appArgs...]')
    .argument('<appResource>', `the application: ${DOCKER_RESOURCE_SCHEME}<image> runs the driver in that image (or give --image)`)
    .argument('[appArgs...]', "the application's arguments: the driver container's command (see docs/rest-submission.md)")
    .option('--master <url>', 'REST server of the master: http://host:6066, https://host:6066 or spark://host:6066 (spark:// means http); default $FLINT_MASTER, else spark.master.rest.host:port')
    .addOption(new Option('--deploy-mode <mode>', 'where the driver runs; only "cluster" (on a worker) is supported').default('cluster'))
    .option('--name <name>', 'application name (spark.app.name); default: --class, else the image or file name of appResource')
    .option('--class <mainClass>', "main class or program: the driver's first argument unless it is a Java class name")
    .option('--image <image>', `container image of the driver (${FLINT_IMAGE_PROPERTY}); overrides a ${DOCKER_RESOURCE_SCHEME} appResource`)
    .option('--driver-cores <n>', 'cores of the driver (spark.driver.cores, default 1)')
    .option('--driver-memory <mem>', 'memory of the driver, e.g. 512m or 2g (spark.driver.memory, default 1g)')
    .option('--executor-cores <n>', "cores per executor of the driver's application (spark.executor.cores)")
    .option('--executor-memory <mem>', 'memory per executor, e.g. 1g (spark.executor.memory)')
    .option('--total-executor-cores <n>', "cores of all the application's executors together (spark.cores.max)")
    .option('--supervise', 'restart the driver if it fails with a non-zero exit code (spark.driver.supervise)')
    .option('--conf <key=value>', 'a Spark property, repeatable (e.g. --conf spark.flint.command=\'["/bin/sh","-c"]\')', collectRepeatable, [])
    .option('--token <token>', 'bearer token with the submit scope (default $FLINT_TOKEN); mint one with `flint token --scope submit`')
    .option('--ca-file <pem>', CA_HELP)
    .passThroughOptions()
    .showHelpAfterError()
    .addHelpText(
      'after',
      `
Examples:
  flint submit --master http://127.0.0.1:6066 --name hello ${DOCKER_RESOURCE_SCHEME}flint-test-busybox:latest echo hello
  flint submit --master spark://127.0.0.1:6066 --driver-memory 256m --supervise \\
      --conf spark.flint.command='["/bin/sh","-c"]' ${DOCKER_RESOURCE_SCHEME}flint-test-busybox:latest 'sleep 30'

Prints the submission (driver) id. Exit codes: 0 submitted, 1 refused or unreachable, 2 bad arguments.`,
    )
    .action(async (appResource: string, appArgs: string[], flags: SubmitFlags) => {
      const { runSubmit } = await import('./submit.ts');
      io.setExitCode(await runSubmit(appResource, appArgs, flags, io));
    });
}
