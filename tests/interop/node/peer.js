// dcmjs-dimse as a Verification peer for echoprobe's interop tests. Loopback only.
//
//   node peer.js echo PORT CALLING CALLED   -> one C-ECHO to 127.0.0.1:PORT, one JSON line
//   node peer.js scp PORT AE SECONDS        -> a Verification SCP on 127.0.0.1:PORT for at most
//                                              SECONDS; one JSON line per event
//
// Every line is JSON so that the tests assert on what dcmjs-dimse itself saw on the wire.
'use strict';

const dimse = require('dcmjs-dimse');

const { Client, Server, Scp } = dimse;
const { CEchoRequest } = dimse.requests;
const { CEchoResponse } = dimse.responses;
const { Status, PresentationContextResult, RejectResult, RejectSource, RejectReason, SopClass,
  TransferSyntax } = dimse.constants;

const HOST = '127.0.0.1';

dimse.log.setLevel('warn'); // only our JSON lines on stdout

function say(event, fields) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function echo(port, calling, called) {
  const client = new Client();
  const request = new CEchoRequest();
  const limit = setTimeout(() => { say('timeout', {}); process.exit(3); }, 20000);
  request.on('response', (response) => {
    say('response', { status: response.getStatus() });
  });
  client.on('associationAccepted', (association) => {
    say('accepted', {
      implementationClassUid: association.getImplementationClassUid(),
      implementationVersion: association.getImplementationVersion(),
      maxPduLength: association.getMaxPduLength(),
    });
  });
  client.on('associationRejected', (reject) => {
    say('rejected', { result: reject.result, source: reject.source, reason: reject.reason });
  });
  client.on('associationReleased', () => say('released', {}));
  client.on('networkError', (error) => say('networkError', { message: String(error.message) }));
  client.on('closed', () => { say('closed', {}); clearTimeout(limit); });
  client.addRequest(request);
  client.send(HOST, port, calling, called, { connectTimeout: 5000, associationTimeout: 5000,
    pduTimeout: 5000 });
}

function scp(port, aeTitle, seconds) {
  class VerificationScp extends Scp {
    associationRequested(association) {
      this.association = association;
      say('associationRequested', {
        callingAeTitle: association.getCallingAeTitle(),
        calledAeTitle: association.getCalledAeTitle(),
        implementationClassUid: association.getImplementationClassUid(),
        implementationVersion: association.getImplementationVersion(),
      });
      if (association.getCalledAeTitle() !== aeTitle) {
        this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser,
          RejectReason.CalledAeNotRecognized);
        return;
      }
      for (const item of association.getPresentationContexts()) {
        const context = association.getPresentationContext(item.id);
        if (context.getAbstractSyntaxUid() === SopClass.Verification
            && context.hasTransferSyntaxUid(TransferSyntax.ImplicitVRLittleEndian)) {
          context.setResult(PresentationContextResult.Accept, TransferSyntax.ImplicitVRLittleEndian);
        } else {
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
        }
      }
      this.sendAssociationAccept();
    }

    cEchoRequest(request, callback) {
      say('echo', { messageId: request.getMessageId() });
      const response = CEchoResponse.fromRequest(request);
      response.setStatus(Status.Success);
      callback(response);
    }

    associationReleaseRequested() {
      say('releaseRequested', {});
      this.sendAssociationReleaseResponse();
    }

    abort(source, reason) {
      say('abort', { source, reason });
    }
  }

  const server = new Server(VerificationScp);
  server.on('listening', () => say('listening', { port }));
  server.on('networkError', (error) => say('networkError', { message: String(error.message) }));
  // Node's server listens on every address unless told: bind it to loopback only.
  const listen = require('net').Server.prototype.listen;
  require('net').Server.prototype.listen = function bound(p, ...rest) {
    return typeof p === 'number' ? listen.call(this, p, HOST, ...rest) : listen.call(this, p, ...rest);
  };
  server.listen(port);
  const stop = () => { server.close(); say('stopped', {}); process.exit(0); };
  setTimeout(stop, seconds * 1000);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'echo' && args.length === 3) {
  echo(Number(args[0]), args[1], args[2]);
} else if (mode === 'scp' && args.length === 3) {
  scp(Number(args[0]), args[1], Number(args[2]));
} else {
  process.stderr.write('usage: peer.js echo PORT CALLING CALLED | peer.js scp PORT AE SECONDS\n');
  process.exit(2);
}
